package test

import (
	"syscall"
	"unsafe"
)

// tcpInfo reads TCP_INFO of fd (Linux).
func tcpInfo(fd uintptr, info *syscall.TCPInfo, size *uint32) error {
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(info)), uintptr(unsafe.Pointer(size)), 0)
	if e != 0 {
		return e
	}
	return nil
}
