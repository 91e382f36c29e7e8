// Command kstatus prints how kstatus, the status library Flux, kpt and
// cli-utils' own poller use, sees Kubernetes objects. It calls the real
// status.Compute from sigs.k8s.io/cli-utils and adds no rules of its own.
//
// Input on stdin: a JSON array of objects, a single object, or a `kind: *List`
// object with `items`. Output on stdout: a JSON array, in input order, of
//
//	{"name": ..., "namespace": ..., "status": "Current", "message": ...}
//
// where status is a kstatus Status (InProgress, Failed, Current, Terminating,
// Unknown). When Compute returns an error (a malformed field), the object is
// reported as Unknown with the error as its message and in "error", which is
// what cli-utils' own status readers do (polling/statusreaders/common.go).
//
// hack/lib/build-kstatus.sh builds it; the library version is
// CLI_UTILS_VERSION in hack/versions.env.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	Error     string `json:"error,omitempty"`
}

// objects splits the input into objects. k8s.io/apimachinery's JSON decoder
// turns whole numbers into int64, as the API machinery does; encoding/json's
// float64 would make kstatus' NestedInt64 lookups (metadata.generation,
// status.observedGeneration) fail.
func objects(data []byte) ([]map[string]interface{}, error) {
	var doc interface{}
	if err := k8sjson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("stdin is not JSON: %w", err)
	}
	var items []interface{}
	switch v := doc.(type) {
	case []interface{}:
		items = v
	case map[string]interface{}:
		kind, _ := v["kind"].(string)
		if list, ok := v["items"].([]interface{}); ok && strings.HasSuffix(kind, "List") {
			items = list
		} else {
			items = []interface{}{v}
		}
	default:
		return nil, fmt.Errorf("stdin is neither an object nor an array of objects")
	}
	out := make([]map[string]interface{}, 0, len(items))
	for i, item := range items {
		obj, ok := item.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("item %d is not an object", i)
		}
		out = append(out, obj)
	}
	return out, nil
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	objs, err := objects(data)
	if err != nil {
		return err
	}
	results := make([]result, 0, len(objs))
	for _, obj := range objs {
		u := &unstructured.Unstructured{Object: obj}
		r := result{Name: u.GetName(), Namespace: u.GetNamespace()}
		computed, err := status.Compute(u)
		if err != nil {
			r.Status, r.Message, r.Error = string(status.UnknownStatus), err.Error(), err.Error()
		} else {
			r.Status, r.Message = string(computed.Status), computed.Message
		}
		results = append(results, r)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
