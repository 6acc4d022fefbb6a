package fstree

import "time"

// Time is a file time: seconds since the Unix epoch and nanoseconds
// (0-999999999), as the system keeps it. An int64 count of nanoseconds
// would end in 2262 and begin in 1677; file systems hold times far beyond
// both (touch -d 3000-01-01 works on ext4), and such a time must reach
// the mirror unchanged, not wrap around.
type Time struct {
	Sec  int64
	Nsec int32
}

// TimeOf converts t.
func TimeOf(t time.Time) Time { return Time{Sec: t.Unix(), Nsec: int32(t.Nanosecond())} }

// TimeFromNs converts nanoseconds since the epoch.
func TimeFromNs(ns int64) Time { return TimeOf(time.Unix(0, ns)) }

// Time converts m back.
func (m Time) Time() time.Time { return time.Unix(m.Sec, int64(m.Nsec)) }

// Before tells whether m is earlier than o.
func (m Time) Before(o Time) bool { return m.Sec < o.Sec || m.Sec == o.Sec && m.Nsec < o.Nsec }
