"""Windows Job Object with kill-on-close: the worker's tree dies with its job (and with the watchdog)."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000


def _win_error() -> OSError:
    if sys.platform == "win32":  # ctypes.WinError and get_last_error exist only there
        return ctypes.WinError(ctypes.get_last_error())
    return OSError("Job Objects exist only on Windows")  # pragma: no cover


class JobObject:
    """A job that the worker process is assigned to; `terminate()` kills every process in it."""

    def __init__(self) -> None:
        if sys.platform != "win32":  # pragma: no cover - only constructed on Windows
            raise OSError("Job Objects exist only on Windows")
        from ctypes import wintypes

        class BasicLimits(ctypes.Structure):
            _fields_ = [
                ("PerProcessUserTimeLimit", ctypes.c_int64),
                ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", wintypes.DWORD),
                ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t),
                ("ActiveProcessLimit", wintypes.DWORD),
                ("Affinity", ctypes.c_size_t),
                ("PriorityClass", wintypes.DWORD),
                ("SchedulingClass", wintypes.DWORD),
            ]

        class ExtendedLimits(ctypes.Structure):
            _fields_ = [
                ("BasicLimitInformation", BasicLimits),
                ("IoInfo", ctypes.c_ulonglong * 6),
                ("ProcessMemoryLimit", ctypes.c_size_t),
                ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t),
            ]

        kernel32: Any = ctypes.WinDLL("kernel32", use_last_error=True)
        # Handles are pointer-sized: without argtypes ctypes would pass them as 32-bit ints.
        kernel32.CreateJobObjectW.argtypes = (ctypes.c_void_p, wintypes.LPCWSTR)
        kernel32.CreateJobObjectW.restype = wintypes.HANDLE
        kernel32.SetInformationJobObject.argtypes = (wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD)
        kernel32.SetInformationJobObject.restype = wintypes.BOOL
        kernel32.AssignProcessToJobObject.argtypes = (wintypes.HANDLE, wintypes.HANDLE)
        kernel32.AssignProcessToJobObject.restype = wintypes.BOOL
        kernel32.TerminateJobObject.argtypes = (wintypes.HANDLE, wintypes.UINT)
        kernel32.TerminateJobObject.restype = wintypes.BOOL
        kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
        kernel32.CloseHandle.restype = wintypes.BOOL
        self._kernel32: Any = kernel32
        self.handle: Any = kernel32.CreateJobObjectW(None, None)
        if not self.handle:
            raise _win_error()
        info = ExtendedLimits()
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        ok = self._kernel32.SetInformationJobObject(
            self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS, ctypes.byref(info), ctypes.sizeof(info)
        )
        if not ok:
            raise _win_error()

    def assign(self, process_handle: int) -> None:
        """Put a process (and so every process it creates later) into the job."""
        if not self._kernel32.AssignProcessToJobObject(self.handle, process_handle):
            raise _win_error()

    def terminate(self, exit_code: int = 1) -> None:
        """Kill every process still in the job."""
        self._kernel32.TerminateJobObject(self.handle, exit_code)

    def close(self) -> None:
        """Close the job handle (kill-on-close ends anything left in it)."""
        if self.handle:
            self._kernel32.CloseHandle(self.handle)
            self.handle = None
