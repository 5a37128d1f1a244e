package loop

import (
	"context"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// inlineLoop is a gnet.EventLoop that runs Execute'd work at once, for testing the
// writable watcher without an engine.
type inlineLoop struct{}

func (inlineLoop) Register(context.Context, net.Addr) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}
func (inlineLoop) Enroll(context.Context, net.Conn) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}
func (inlineLoop) Execute(ctx context.Context, r gnet.Runnable) error { return r.Run(ctx) }
func (inlineLoop) Schedule(context.Context, gnet.Runnable, time.Duration) error {
	return nil
}
func (inlineLoop) Close(gnet.Conn) error { return nil }
