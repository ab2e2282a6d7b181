package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownKeys lists the mapping keys of n that are no field of t, in
// yaml.v3's own words for KnownFields ("line N: field K not found in type
// T"). Parse decodes the node tree it already has (yaml.Node.Decode, which
// cannot reject unknown fields) instead of parsing the file a second time
// with a strict yaml.Decoder: this walk is that strictness, for a third of
// the load time of a large config.
func unknownKeys(n *yaml.Node, t reflect.Type, out []string) []string {
	w := keyWalk{fields: map[reflect.Type]map[string]reflect.Type{}}
	return w.walk(n, t, out, 0)
}

// keyWalk memoizes each struct type's fields for one walk (a config of
// ten thousand clients has ten thousand Client mappings).
type keyWalk struct {
	fields map[reflect.Type]map[string]reflect.Type
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (w *keyWalk) walk(n *yaml.Node, t reflect.Type, out []string, depth int) []string {
	if n == nil || depth > 200 {
		return out
	}
	if n.Kind == yaml.AliasNode {
		// Alias cycles were refused before (expandedSize); the depth bound
		// is a second guard.
		return w.walk(n.Alias, t, out, depth+1)
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			out = w.walk(c, t, out, depth+1)
		}
		return out
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return out // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return out
		}
		fields, ok := w.fields[t]
		if !ok {
			fields = yamlFields(t)
			w.fields[t] = fields
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// The merged mappings' keys land in this struct.
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						out = w.walk(m, t, out, depth+1)
					}
				} else {
					out = w.walk(v, t, out, depth+1)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				out = append(out, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, t.String()))
				continue
			}
			out = w.walk(v, ft, out, depth+1)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				out = w.walk(c, t.Elem(), out, depth+1)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				out = w.walk(n.Content[i], t.Elem(), out, depth+1)
			}
		}
	}
	return out
}

// yamlFields maps the keys yaml.v3 decodes into struct t (its exported
// fields, by tag or lower-cased name, inline structs' fields included) to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if strings.Contains(","+flags+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
