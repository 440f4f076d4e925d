//go:build js

package widget

import "syscall/js"

// ParseJSON parses one JSON document. In the browser it is the engine's
// JSON.parse, walked into the same value tree as the Go reader
// (json_parse.go) builds: that reader would cost widget.wasm some 20 KB
// raw, and JSON.parse is faster. The differences do not reach a frame:
// a number's Str is its shortest decimal form (exact for integers up to
// 2^53, all that frames carry), and a repeated key keeps only its last
// value, which is the one Get returns anyway.
func ParseJSON(data []byte) (v JSONValue, err error) {
	defer func() {
		if recover() != nil { // JSON.parse threw: the text is not JSON
			v, err = JSONValue{}, &Error{Code: CodeBadRequest, Message: "invalid JSON"}
		}
	}()
	return fromJS(js.Global().Get("JSON").Call("parse", string(data)), 0)
}

// fromJS converts a value of JSON.parse into the tree.
func fromJS(x js.Value, depth int) (JSONValue, error) {
	if depth > maxDepth {
		return JSONValue{}, &Error{Code: CodeBadRequest, Message: "invalid JSON: nested too deeply"}
	}
	var v JSONValue
	switch x.Type() {
	case js.TypeBoolean:
		v.Kind, v.Bool = JSONBool, x.Bool()
	case js.TypeNumber:
		v.Kind, v.Str = JSONNumber, js.Global().Call("String", x).String()
	case js.TypeString:
		v.Kind, v.Str = JSONString, x.String()
	case js.TypeObject:
		keys, n := x, x.Length()
		v.Kind = JSONArray
		if !js.Global().Get("Array").Call("isArray", x).Bool() {
			keys = js.Global().Get("Object").Call("keys", x)
			n = keys.Length()
			v.Kind = JSONObject
		}
		for i := 0; i < n; i++ {
			var item js.Value
			var key string
			if v.Kind == JSONArray {
				item = x.Index(i)
			} else {
				key = keys.Index(i).String()
				item = x.Get(key)
			}
			c, err := fromJS(item, depth+1)
			if err != nil {
				return JSONValue{}, err
			}
			if v.Kind == JSONArray {
				v.Items = append(v.Items, c)
			} else {
				v.Fields = append(v.Fields, JSONField{Key: key, Value: c})
			}
		}
	}
	return v, nil
}
