package gateway

import (
	"embed"
	"io/fs"
	"net/http"
)

// The web console: static files embedded in the binary (no CDN, works
// offline), a single page that reads the REST API and its streams.
//
//go:embed web
var webFiles embed.FS

func (g *Gateway) consoleRoutes() {
	sub, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(sub)
	g.handle("GET /", public, false, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
