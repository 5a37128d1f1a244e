package server

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the configuration's directory must be quiet after
// a change before the file is read: editors and deployment tools write a
// file in several steps (truncate, write, rename; Kubernetes swaps a
// symlink), and a half-written file must not be tried as a configuration.
const watchSettle = 200 * time.Millisecond

// configWatcher reloads the configuration when its file changes. It watches
// the file's directory, not the file: a file replaced by a rename (what most
// editors and config-management tools do) is a new inode a watch on the old
// one would never see. An event only leads to a reload when the file's bytes
// differ from those in service, so other files of the directory and writes
// of the same bytes cost a read, not a reload.
//
// Concurrency: run is its own goroutine; stop may be called from any
// goroutine, once.
type configWatcher struct {
	r    *reloader
	w    *fsnotify.Watcher
	done chan struct{}
}

// watchConfig starts watching r's file; an error leaves the reload to
// SIGHUP and the admin API.
func watchConfig(r *reloader) (*configWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	if err := w.Add(filepath.Dir(r.path)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch config directory: %w", err)
	}
	cw := &configWatcher{r: r, w: w, done: make(chan struct{})}
	go cw.run()
	return cw, nil
}

func (cw *configWatcher) run() {
	defer close(cw.done)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case _, ok := <-cw.w.Events:
			if !ok {
				return
			}
			settle.Reset(watchSettle) // any change in the directory: the file may be a symlink into it
		case err, ok := <-cw.w.Errors:
			if !ok {
				return
			}
			cw.r.s.log.Warn().Err(err).Str("config", cw.r.path).Msg("config file watch")
		case <-settle.C:
			data, err := os.ReadFile(cw.r.path)
			if err != nil || hashOf(data) == cw.r.Status().Hash {
				continue // gone for now (a rename in progress) or the same bytes
			}
			cw.r.Reload(TriggerWatch)
		}
	}
}

// stop ends the watch and waits for run to return.
func (cw *configWatcher) stop() {
	_ = cw.w.Close()
	<-cw.done
}
