package server

import "testing"

// TestCeilingsFor: the loops refuse from the limit less a reserve of 1/16 (at
// least 64), the admin side from half-way up that reserve; never the admin's
// below the loops'.
func TestCeilingsFor(t *testing.T) {
	cases := []struct{ limit, loops, admin int }{
		{160, 96, 128},
		{1024, 960, 992},
		{65536, 61440, 63488},
		{20, 16, 18}, // the loops' floor of 16 is above limit - 64
		{10, 16, 16}, // and above the limit: the admin's no lower
	}
	for _, tc := range cases {
		loops, admin := ceilingsFor(tc.limit)
		if loops != tc.loops || admin != tc.admin {
			t.Errorf("limit %d: ceilings %d, %d; want %d, %d", tc.limit, loops, admin, tc.loops, tc.admin)
		}
	}
}
