package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports decoding errors by line ("line 7: cannot unmarshal ..."); an
// operator wants the key. keyErrors rewrites each such line as
// "server.idle_timeout (line 7): cannot unmarshal ...", using the document's own
// node tree to map lines to dotted keys.

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

func keyErrors(data []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	keys := map[int]string{}
	walkKeys(&root, "", keys)
	lines := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	}
	var out []string
	for _, e := range lines {
		m := lineRe.FindStringSubmatch(e)
		if m == nil {
			out = append(out, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		key := keys[line]
		if f := strings.TrimPrefix(msg, "field "); f != msg {
			// "field X not found in type config.T": the key is X itself.
			if name, _, ok := strings.Cut(f, " "); ok {
				key = parentKey(keys[line], name)
				msg = "unknown key " + strconv.Quote(name)
			}
		}
		if key == "" {
			out = append(out, e)
			continue
		}
		out = append(out, fmt.Sprintf("%s (line %d): %s", key, line, msg))
	}
	return errors.New(strings.Join(out, "; "))
}

func walkKeys(n *yaml.Node, prefix string, keys map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkKeys(c, prefix, keys)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			keys[k.Line] = path
			walkKeys(v, path, keys)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			if _, ok := keys[c.Line]; !ok {
				keys[c.Line] = path
			}
			walkKeys(c, path, keys)
		}
	}
}

// parentKey turns the key found on an unknown field's line (which is the unknown
// key itself, "server.max_conns") into that path, or builds it from the name.
func parentKey(found, name string) string {
	if found == "" {
		return name
	}
	if strings.HasSuffix(found, "."+name) || found == name {
		return found
	}
	return found + "." + name
}

// withLines adds to each "key: message" of a validation error the line of
// the key in data, or of its nearest parent that the file has ("origins.api
// (line 12): ..."), as keyErrors does for decoding errors.
func withLines(data []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	byLine := map[int]string{}
	walkKeys(&root, "", byLine)
	lineOf := make(map[string]int, len(byLine))
	for line, key := range byLine {
		if l, ok := lineOf[key]; !ok || line < l {
			lineOf[key] = line
		}
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		msg := e.Error()
		key, rest, ok := strings.Cut(msg, ": ")
		if !ok || strings.ContainsAny(key, " \"") {
			out = append(out, msg)
			continue
		}
		out = append(out, keyWithLine(key, lineOf)+": "+rest)
	}
	return errors.New(strings.Join(out, "\n"))
}

// keyWithLine is key with the line of it, or of its nearest parent found.
func keyWithLine(key string, lineOf map[string]int) string {
	for k := key; k != ""; {
		if line, ok := lineOf[k]; ok {
			if k == key {
				return fmt.Sprintf("%s (line %d)", key, line)
			}
			return fmt.Sprintf("%s (in %s, line %d)", key, k, line)
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return key
}
