package lua

import (
	"strconv"
	"strings"
	"unsafe"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// The library functions below replace gopher-lua's where a single call could
// build a string of any size (the time budget only stops a script between
// instructions, not inside one Go call). Each refuses, with a Lua error, to
// build more than sandbox.maxStr bytes.

// strRep is string.rep with a result cap.
func (s *sandbox) strRep(L *glua.LState) int {
	str := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || len(str) == 0 {
		L.Push(glua.LString(""))
		return 1
	}
	if n > s.maxStr/len(str) {
		L.RaiseError("string.rep result too large (limit %d bytes)", s.maxStr)
	}
	L.Push(glua.LString(strings.Repeat(str, n)))
	return 1
}

// strFormat is string.format with Lua 5.1's rule that widths and precisions
// have at most two digits (gopher-lua hands them to fmt, which accepts up to
// 10^6), and a cap on the result.
func (s *sandbox) strFormat(orig glua.LGFunction) glua.LGFunction {
	return func(L *glua.LState) int {
		f := L.CheckString(1)
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
				i++
			}
			if digits(f, &i) > 2 {
				L.RaiseError("invalid format (width or precision too long)")
			}
			if i < len(f) && f[i] == '.' {
				i++
				if digits(f, &i) > 2 {
					L.RaiseError("invalid format (width or precision too long)")
				}
			}
		}
		top := L.GetTop()
		orig(L)
		if out := L.Get(-1); out.Type() == glua.LTString && len(out.(glua.LString)) > s.maxStr {
			L.SetTop(top)
			L.RaiseError("string.format result too large (limit %d bytes)", s.maxStr)
		}
		return 1
	}
}

// digits skips the decimal digits at f[*i:] and returns how many there were.
func digits(f string, i *int) int {
	n := 0
	for *i < len(f) && f[*i] >= '0' && f[*i] <= '9' {
		*i++
		n++
	}
	return n
}

// roBytes views s as bytes without copying; pm only reads its input.
func roBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// findAll runs a pattern over str, at most limit matches (limit < 0: all), and
// refuses more than maxMatches: the matcher collects every match up front.
func findAll(L *glua.LState, fn, pat, str string, limit int) []*pm.MatchData {
	if limit == 0 {
		return nil
	}
	want := maxMatches + 1
	if limit > 0 && limit < want {
		want = limit
	}
	mds, err := pm.Find(pat, roBytes(str), 0, want)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if len(mds) > maxMatches {
		L.RaiseError("%s: more than %d matches", fn, maxMatches)
	}
	return mds
}

// capture returns capture idx (0: whole match) of m as a Lua value: a string,
// or a number for a position capture "()".
func capture(L *glua.LState, m *pm.MatchData, str string, idx int) glua.LValue {
	if idx == 1 && m.CaptureLength() == 2 {
		idx = 0 // %1 without captures is the whole match
	}
	if 2*idx >= m.CaptureLength() {
		L.RaiseError("invalid capture index")
	}
	if m.IsPosCapture(2 * idx) {
		return glua.LNumber(m.Capture(2 * idx))
	}
	return glua.LString(str[m.Capture(2*idx):m.Capture(2*idx+1)])
}

// strGsub is string.gsub built in one pass (gopher-lua's copies the whole
// string once per match) with a result cap.
func (s *sandbox) strGsub(L *glua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, glua.LTString, glua.LTNumber, glua.LTTable, glua.LTFunction)
	repl := L.Get(3)
	mds := findAll(L, "string.gsub", pat, str, L.OptInt(4, -1))

	var b strings.Builder
	add := func(part string) {
		if b.Len()+len(part) > s.maxStr {
			L.RaiseError("string.gsub result too large (limit %d bytes)", s.maxStr)
		}
		b.WriteString(part)
	}
	last := 0
	for _, m := range mds {
		start, end := m.Capture(0), m.Capture(1)
		add(str[last:start])
		last = end
		whole := str[start:end]
		switch r := repl.(type) {
		case glua.LString, glua.LNumber:
			rs := glua.LVAsString(r)
			for i := 0; i < len(rs); i++ {
				c := rs[i]
				if c != '%' || i+1 == len(rs) {
					add(rs[i : i+1])
					continue
				}
				i++
				if c = rs[i]; c >= '0' && c <= '9' {
					add(glua.LVAsString(capture(L, m, str, int(c-'0'))))
				} else {
					add(rs[i : i+1]) // "%%" is "%", "%x" is "x" (Lua 5.1)
				}
			}
		case *glua.LTable:
			add(replacement(L, L.GetTable(r, capture(L, m, str, 1)), whole))
		case *glua.LFunction:
			L.Push(r)
			n := 1
			if m.CaptureLength() > 2 {
				n = m.CaptureLength()/2 - 1
				for i := 1; i <= n; i++ {
					L.Push(capture(L, m, str, i))
				}
			} else {
				L.Push(glua.LString(whole))
			}
			L.Call(n, 1)
			v := L.Get(-1)
			L.Pop(1)
			add(replacement(L, v, whole))
		}
	}
	add(str[last:])
	L.Push(glua.LString(b.String()))
	L.Push(glua.LNumber(len(mds)))
	return 2
}

// replacement is what a table or function replacement value stands for: the
// original match for nil or false, the value itself for a string or number.
func replacement(L *glua.LState, v glua.LValue, whole string) string {
	switch v := v.(type) {
	case glua.LString:
		return string(v)
	case glua.LNumber:
		return v.String()
	case *glua.LNilType:
		return whole
	case glua.LBool:
		if !bool(v) {
			return whole
		}
	}
	L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	return ""
}

// strGmatch is string.gmatch refusing more than maxMatches matches.
func strGmatch(L *glua.LState) int {
	str := L.CheckString(1)
	mds := findAll(L, "string.gmatch", L.CheckString(2), str, -1)
	next := 0
	L.Push(L.NewFunction(func(L *glua.LState) int {
		if next >= len(mds) {
			return 0
		}
		m := mds[next]
		next++
		if m.CaptureLength() == 2 {
			L.Push(capture(L, m, str, 0))
			return 1
		}
		n := m.CaptureLength()/2 - 1
		for i := 1; i <= n; i++ {
			L.Push(capture(L, m, str, i))
		}
		return n
	}))
	return 1
}

// tableConcat is table.concat with a result cap; it also avoids pushing every
// element on the value stack as gopher-lua's does.
func (s *sandbox) tableConcat(L *glua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	var b strings.Builder
	for k := i; k <= j; k++ {
		var part string
		switch v := t.RawGetInt(k).(type) {
		case glua.LString:
			part = string(v)
		case glua.LNumber:
			part = v.String()
		default:
			L.RaiseError("invalid value (at index %s) in table for 'concat'", strconv.Itoa(k))
		}
		if b.Len()+len(part)+len(sep) > s.maxStr {
			L.RaiseError("table.concat result too large (limit %d bytes)", s.maxStr)
		}
		b.WriteString(part)
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(glua.LString(b.String()))
	return 1
}
