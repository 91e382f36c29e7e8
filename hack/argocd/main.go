// Command argocd-health runs an Argo CD resource health script on Kubernetes
// objects the way Argo CD's application controller does, and prints what
// Argo CD would show.
//
// Usage: argocd-health SCRIPT.lua < objects.json
//
// Input on stdin: a JSON array of objects, a single object, or a `kind: *List`
// object with `items`. Output on stdout: a JSON array, in input order, of
//
//	{"name": ..., "namespace": ..., "status": "Healthy", "message": ...}
//
// or, when Argo CD would fail to compute a health (the script raised an error
// or returned something that is not a table), {"name", "namespace", "error"}.
//
// What is Argo CD's here (argo-cd util/lua, lua.go, at the release
// ARGOCD_VERSION in hack/versions.env; hack/lib/build-argocd-health.sh takes
// the gopher-lua, gopher-json and apimachinery versions from that release's
// go.mod, so this runs the interpreter Argo CD ships):
//   - the object is an unstructured.Unstructured decoded from JSON by
//     apimachinery (whole numbers int64, others float64), turned into a Lua
//     table value by value: numbers to numbers, maps to hash tables, lists to
//     array tables, null to nil;
//   - a fresh gopher-lua state per object with the standard libraries skipped
//     (Argo CD's default, useOpenLibs false) and only package, base, table and
//     a safe os (time and date only) opened, `require("os")` giving the same;
//   - a one second deadline on the script;
//   - the value the script returns, encoded with gopher-json and decoded as
//     {status, message}: nil or an empty table gives an empty health, a status
//     outside Healthy/Progressing/Degraded/Suspended/Missing/Unknown gives
//     Unknown with "Lua returned an invalid health status", anything other
//     than a table is an error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

// The statuses Argo CD accepts from a health script (gitops-engine health.HealthStatusCode).
var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

// health has the JSON shape of gitops-engine's health.HealthStatus.
type health struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	Error     string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	objects, err := split(input)
	if err != nil {
		fail(err)
	}
	results := make([]result, 0, len(objects))
	for _, raw := range objects {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			fail(fmt.Errorf("not a Kubernetes object: %w", err))
		}
		r := result{Name: obj.GetName(), Namespace: obj.GetNamespace()}
		if h, err := executeHealth(obj, string(script)); err != nil {
			r.Error = err.Error()
		} else {
			r.Status, r.Message = h.Status, h.Message
		}
		results = append(results, r)
	}
	out, err := json.Marshal(results)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(1)
}

// split returns each object of the input as raw JSON.
func split(data []byte) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(data, &list); err == nil {
		return list, nil
	}
	var one struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &one); err != nil {
		return nil, fmt.Errorf("stdin is neither an object nor an array of objects: %w", err)
	}
	if strings.HasSuffix(one.Kind, "List") && one.Items != nil {
		return one.Items, nil
	}
	return []json.RawMessage{data}, nil
}

// executeHealth runs the script on the object and reads its answer as Argo CD does.
func executeHealth(obj *unstructured.Unstructured, script string) (*health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	openLibraries(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = "" // Argo CD shows the error without the Lua stack trace
			return nil, apiErr
		}
		return nil, err
	}
	returned := l.Get(-1)
	switch returned.Type() {
	case lua.LTNil:
		return &health{}, nil
	case lua.LTTable:
	default:
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type().String())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return nil, err
	}
	h := &health{}
	if err := json.Unmarshal(encoded, h); err != nil {
		// gopher-json encodes an empty table as [], which Argo CD reads as an empty health.
		typeError := &json.UnmarshalTypeError{Value: "array", Type: reflect.TypeFor[*health]()}
		if errors.As(err, &typeError) {
			return &health{}, nil
		}
		return nil, err
	}
	if !validStatuses[h.Status] {
		return &health{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return h, nil
}

// openLibraries opens what Argo CD opens with the standard libraries skipped:
// package, base, table, and an os library reduced to time and date (the only
// os functions Argo CD's safe os offers; its copies behave as gopher-lua's).
func openLibraries(l *lua.LState) {
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			panic(err)
		}
	}
	safe := safeOs()
	l.RegisterModule(lua.OsLibName, safe)
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), safe))
		return 1
	})
}

// safeOs returns gopher-lua's own os.time and os.date, taken from a scratch
// state so the other os functions never exist in the script's state.
func safeOs() map[string]lua.LGFunction {
	scratch := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer scratch.Close()
	if err := scratch.CallByParam(lua.P{Fn: scratch.NewFunction(lua.OpenOs), NRet: 0, Protect: true}, lua.LString(lua.OsLibName)); err != nil {
		panic(err)
	}
	full := scratch.GetGlobal(lua.OsLibName).(*lua.LTable)
	safe := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		safe[name] = full.RawGetString(name).(*lua.LFunction).GFunction
	}
	return safe
}

// toLua turns a value of an unstructured object into a Lua value, as Argo CD's decodeValue does.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case json.Number:
		return lua.LString(v)
	case string:
		return lua.LString(v)
	case []any:
		array := l.CreateTable(len(v), 0)
		for _, item := range v {
			array.Append(toLua(l, item))
		}
		return array
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}
