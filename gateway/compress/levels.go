package compress

import "github.com/klauspost/compress/zstd"

// gzipLevel maps a Gozer level to klauspost's flate level: the same number.
func gzipLevel(level int) int { return level }

// brotliQualities maps a Gozer level to a brotli quality (see the package comment
// for why 0, 1 and 7 up are left out).
var brotliQualities = [MaxLevel + 1]int{1: 2, 2: 2, 3: 3, 4: 3, 5: 4, 6: 4, 7: 5, 8: 5, 9: 6}

func brotliQuality(level int) int { return brotliQualities[level] }

// zstdLevel maps a Gozer level to one of klauspost's zstd levels.
func zstdLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 3:
		return zstd.SpeedFastest
	case level <= 7:
		return zstd.SpeedDefault
	}
	return zstd.SpeedBetterCompression
}
