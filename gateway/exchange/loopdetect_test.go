package exchange

import "testing"

func TestCountVia(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int
	}{
		{"1.1 gozer", 1},
		{"1.1 gozer, 1.1 gozer", 2},
		{"1.0 fred, 1.1 gozer (edge),1.1 gozer", 2},
		{"1.1 gozer-edge, 1.1 gozerx", 0},
		{" , ,1.1 gozer ,", 1},
		{"", 0},
	} {
		if got := countVia([]byte(tc.v), []byte("1.1 gozer")); got != tc.want {
			t.Errorf("countVia(%q) = %d, want %d", tc.v, got, tc.want)
		}
	}
}
