// Command etcd is the etcd v3 server (go.etcd.io/etcd/server/v3) for the integration tests, with
// one change: write-ahead-log segments are preallocated at 4 MB instead of 64 MB. Every test API
// server has its own etcd, up to several at once, and each kept one or two 64 MB segments on disk
// (CI ran out of space in /tmp). Segments still roll over as usual; only the preallocation shrinks.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

func main() {
	wal.SegmentSizeBytes = 4 * 1000 * 1000
	etcdmain.Main(os.Args)
}
