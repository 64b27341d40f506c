//go:build !linux

package agent

import (
	"errors"
	"os"
)

// watchFile needs inotify: local approval is for Linux sites.
func watchFile(dir, name string, changed chan<- struct{}) (stop func(), err error) {
	return nil, errors.New("local approval (--approval manual or trusted) needs Linux (inotify)")
}

func ownLikeDir(*os.File, string) error { return nil }
