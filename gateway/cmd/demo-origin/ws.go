package main

import (
	"net/http"

	"github.com/gorilla/websocket"
)

// wsUpgrader accepts any page's websocket (the demo origin trusts Gozer in
// front of it).
var wsUpgrader = websocket.Upgrader{
	ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10,
	CheckOrigin: func(*http.Request) bool { return true },
}

// ws is /ws: a websocket that sends every message back as it came (text or
// binary), until the client closes; what Gozer's websocket proxying
// (origins.NAME.websocket) is tried and benchmarked with.
func (o *origin) ws(w http.ResponseWriter, r *http.Request) {
	c, err := wsUpgrader.Upgrade(w, r, http.Header{"X-Origin-Name": {o.name}})
	if err != nil {
		return // the upgrader answered 400
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}
