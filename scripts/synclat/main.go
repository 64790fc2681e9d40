// Command synclat measures the disk's floor under a durable commit: the
// latency of fdatasync(2) after writing as much as a small batch of
// decisions adds to SQLite's log (-size bytes), at a steady pace (-every),
// in a file of a directory on the database's disk (-dir), overwriting a
// -span long region as a log that starts over does. It prints the
// percentiles of the syncs alone. A durable decision waits for at least one
// such sync, and one that arrives while a batch is being synced waits for
// two; scripts/ratios.sh prints this beside its latencies, so the tail
// target can be read against what the disk itself takes.
//
//	go run ./scripts/synclat -dir /var/lib/margen -n 3000
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure")
	n := flag.Int("n", 3000, "syncs to time")
	size := flag.Int("size", 40<<10, "bytes written before each sync")
	span := flag.Int64("span", 16<<20, "bytes the writes cycle over")
	every := flag.Duration("every", 2*time.Millisecond, "pause between syncs")
	flag.Parse()
	if err := run(*dir, *n, *size, *span, *every); err != nil {
		fmt.Fprintln(os.Stderr, "synclat:", err)
		os.Exit(1)
	}
}

func run(dir string, n, size int, span int64, every time.Duration) error {
	if n < 1 || size < 1 || span < int64(size) {
		return fmt.Errorf("want -n >= 1, -size >= 1 and -span >= -size")
	}
	f, err := os.CreateTemp(dir, "synclat-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	// Write the whole span once, so the timed writes overwrite blocks the
	// file already has (no size change for the sync to journal).
	for off := int64(0); off < span; off += int64(size) {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
	}
	if err := fdatasync(f); err != nil {
		return err
	}
	times := make([]time.Duration, 0, n)
	off := int64(0)
	for range n {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		if off += int64(size); off+int64(size) > span {
			off = 0
		}
		start := time.Now()
		if err := fdatasync(f); err != nil {
			return err
		}
		times = append(times, time.Since(start))
		time.Sleep(every)
	}
	slices.Sort(times)
	p := func(q float64) time.Duration { return times[int(q*float64(len(times)-1))].Round(time.Microsecond) }
	fmt.Printf("sync       %d syncs of %d-byte writes every %v in %s\n", n, size, every, dir)
	fmt.Printf("latency    p50 %v  p90 %v  p99 %v  p999 %v  max %v\n", p(0.5), p(0.9), p(0.99), p(0.999), times[len(times)-1].Round(time.Microsecond))
	return nil
}
