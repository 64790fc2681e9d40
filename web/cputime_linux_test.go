package web_test

import (
	"syscall"
	"time"
	"unsafe"
)

// processCPU returns the CPU time the test process has used, on all its
// threads (CLOCK_PROCESS_CPUTIME_ID). Requests are sequential, so the
// difference around one is the CPU it took, including what the goroutines
// it starts (a page reads its sections at the same time) and the garbage
// collector did for it; the other processes on a shared machine do not
// inflate it as they do wall time.
func processCPU() (time.Duration, bool) {
	var ts syscall.Timespec
	const clockProcessCPUTimeID = 2
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
