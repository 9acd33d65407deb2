package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the files of k8s/, each with the kind it holds.
var manifests = map[string]string{
	"deployment.yaml":       "Deployment",
	"service.yaml":          "Service",
	"secret-tokens.yaml":    "Secret",
	"secret-tls.yaml":       "Secret",
	"pvc.yaml":              "PersistentVolumeClaim",
	"inferenceservice.yaml": "InferenceService",
}

// decodeStrict decodes a manifest into v: unknown and duplicate fields
// fail, as `kubectl apply --validate=strict` fails them.
func decodeStrict(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("k8s", name))
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, v), "%s", name)
}

// apiTypes are the kinds of manifest that have a type in k8s.io/api: the
// apiVersion each manifest of the kind gives and a new value of the type.
var apiTypes = map[string]struct {
	apiVersion string
	new        func() runtime.Object
}{
	"Deployment":            {"apps/v1", func() runtime.Object { return &appsv1.Deployment{} }},
	"Service":               {"v1", func() runtime.Object { return &corev1.Service{} }},
	"Secret":                {"v1", func() runtime.Object { return &corev1.Secret{} }},
	"PersistentVolumeClaim": {"v1", func() runtime.Object { return &corev1.PersistentVolumeClaim{} }},
}

// Every file of k8s/ is in the table, and decodes strictly into the real
// API type of its kind (the InferenceService, which has none in k8s.io/api,
// into its metadata and the pod fields of its predictor).
func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	require.Len(t, files, len(manifests), "k8s/ holds %v", files)
	for name, kind := range manifests {
		t.Run(name, func(t *testing.T) {
			var tm metav1.TypeMeta
			b, err := os.ReadFile(filepath.Join("k8s", name))
			require.NoError(t, err)
			require.NoError(t, yaml.Unmarshal(b, &tm))
			assert.Equal(t, kind, tm.Kind)
			if api, ok := apiTypes[kind]; ok {
				obj := api.new()
				decodeStrict(t, name, obj)
				assert.Equal(t, api.apiVersion, obj.GetObjectKind().GroupVersionKind().GroupVersion().String())
				return
			}
			require.Equal(t, "InferenceService", kind, "no test for kind %s", kind)
			isvc := readISVC(t)
			assert.Equal(t, "serving.kserve.io/v1beta1", isvc.APIVersion)
			assert.NotEmpty(t, isvc.Predictor.Containers)
		})
	}
}

// isvc is the InferenceService manifest with its predictor's pod fields in
// the Kubernetes types KServe's PodSpec embeds.
type isvc struct {
	metav1.TypeMeta
	Metadata  metav1.ObjectMeta
	Predictor struct {
		Containers []corev1.Container
		Volumes    []corev1.Volume
	}
}

func readISVC(t *testing.T) isvc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("k8s", "inferenceservice.yaml"))
	require.NoError(t, err)
	var raw struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        json.RawMessage `json:"metadata"`
		Spec            struct {
			Predictor map[string]json.RawMessage `json:"predictor"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(b, &raw))
	out := isvc{TypeMeta: raw.TypeMeta}
	require.NoError(t, yaml.UnmarshalStrict(raw.Metadata, &out.Metadata), "metadata")
	for field, dst := range map[string]any{"containers": &out.Predictor.Containers, "volumes": &out.Predictor.Volumes} {
		if r, ok := raw.Spec.Predictor[field]; ok {
			require.NoError(t, yaml.UnmarshalStrict(r, dst), "predictor.%s", field)
		}
	}
	return out
}

// The InferenceService is valid under KServe's published CRD schema (v1beta1
// of serving.kserve.io_inferenceservices.yaml, the part the manifest uses,
// derived by ./cmd/crdschema into testdata/).
func TestInferenceServiceMatchesKServeCRD(t *testing.T) {
	var derived struct {
		Source string         `json:"source"`
		Schema map[string]any `json:"openAPIV3Schema"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "kserve-inferenceservice-v1beta1.schema.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &derived))
	require.Contains(t, derived.Source, "serving.kserve.io_inferenceservices.yaml")
	var obj any
	mb, err := os.ReadFile(filepath.Join("k8s", "inferenceservice.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(mb, &obj))
	// The API server checks metadata as an ObjectMeta (readISVC decodes it
	// strictly), not with the CRD's schema, which says only "object".
	delete(obj.(map[string]any), "metadata")
	require.NoError(t, Validate(derived.Schema, obj), "k8s/inferenceservice.yaml against %s", derived.Source)
}

// The validator refuses what the CRD refuses: an unknown field, a wrong
// type, a field pruned from the derived schema, a missing required field.
func TestValidateRefuses(t *testing.T) {
	schema := map[string]any{"type": "object", "required": []any{"a"}, "properties": map[string]any{
		"a": map[string]any{"type": "integer", "minimum": float64(1)},
		"b": map[string]any{Pruned: true},
		"c": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []any{"x"}}},
		"p": map[string]any{"x-kubernetes-int-or-string": true},
	}}
	cases := []struct {
		name string
		v    map[string]any
		want string
	}{
		{"ok", map[string]any{"a": float64(2), "c": []any{"x"}, "p": "80%"}, ""},
		{"unknown", map[string]any{"a": float64(2), "z": true}, `unknown field "z"`},
		{"pruned", map[string]any{"a": float64(2), "b": "x"}, "derive it again"},
		{"required", map[string]any{}, `the required field "a" is missing`},
		{"type", map[string]any{"a": "2"}, "want a number"},
		{"minimum", map[string]any{"a": float64(0)}, "below the minimum"},
		{"enum", map[string]any{"a": float64(1), "c": []any{"y"}}, "is not one of"},
		{"int or string", map[string]any{"a": float64(1), "p": true}, "want an integer or a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(schema, tc.v)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// openRoutes are the routes of docs/openapi.json (serve's route table)
// that GET answers without a token.
func openRoutes(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "openapi.json"))
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	open := map[string]bool{}
	for p, ops := range doc.Paths {
		if op, ok := ops["get"]; ok && op.Security == nil {
			open[p] = true
		}
	}
	require.NotEmpty(t, open)
	return open
}

// addrPort is the port of a container's --addr argument.
func addrPort(t *testing.T, c corev1.Container) int32 {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--addr="); ok {
			_, port, err := net.SplitHostPort(v)
			require.NoError(t, err)
			var n int32
			_, err = fmt.Sscan(port, &n)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("container %s: no --addr=HOST:PORT argument", c.Name)
	return 0
}

// probePort is the container port a probe's port names (a number, or the
// name of one of the container's ports; none: the container's only one).
func probePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	switch {
	case p.Type == intstr.String:
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
		t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	case p.IntVal != 0:
		return p.IntVal
	}
	require.Len(t, c.Ports, 1, "container %s: a probe without a port needs exactly one container port", c.Name)
	return c.Ports[0].ContainerPort
}

// checkServeContainer checks a container running `loraqa serve`: each
// probe asks an open v2 health route of serve on the port serve listens on
// (--addr), with HTTPS exactly when serve has a certificate; the port is
// one the container declares; every file serve reads from a secret is a
// key of that secret's manifest.
func checkServeContainer(t *testing.T, c corev1.Container, vols []corev1.Volume, secrets map[string]corev1.Secret) {
	t.Helper()
	require.NotEmpty(t, c.Args)
	assert.Equal(t, "serve", c.Args[0], "container %s runs loraqa serve", c.Name)
	open := openRoutes(t)
	port := addrPort(t, c)
	tls := false
	for _, a := range c.Args {
		tls = tls || strings.HasPrefix(a, "--tls-cert=")
	}
	declared := false
	for _, cp := range c.Ports {
		declared = declared || cp.ContainerPort == port
	}
	assert.True(t, declared, "container %s does not declare port %d of --addr", c.Name, port)
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
	for kind, p := range probes {
		if p == nil {
			continue
		}
		require.NotNil(t, p.HTTPGet, "%s probe of %s is not an HTTP GET", kind, c.Name)
		assert.True(t, strings.HasPrefix(p.HTTPGet.Path, "/v2/health/"), "%s probe %s is not a v2 health route", kind, p.HTTPGet.Path)
		assert.True(t, open[p.HTTPGet.Path], "%s probe path %s is not an open GET route of serve (docs/openapi.json)", kind, p.HTTPGet.Path)
		assert.Equal(t, port, probePort(t, c, p.HTTPGet.Port), "%s probe port of %s", kind, c.Name)
		want := corev1.URISchemeHTTP
		if tls {
			want = corev1.URISchemeHTTPS
		}
		scheme := p.HTTPGet.Scheme
		if scheme == "" {
			scheme = corev1.URISchemeHTTP
		}
		assert.Equal(t, want, scheme, "%s probe scheme of %s", kind, c.Name)
	}
	assert.NotNil(t, c.ReadinessProbe, "container %s has no readiness probe", c.Name)
	assert.Equal(t, "/v2/health/ready", c.ReadinessProbe.HTTPGet.Path)
	assert.NotNil(t, c.LivenessProbe, "container %s has no liveness probe", c.Name)
	// Files read from secrets exist in them.
	for _, a := range c.Args {
		flag, file, ok := strings.Cut(a, "=")
		if !ok || !(strings.HasSuffix(flag, "-file") || strings.HasPrefix(flag, "--tls-")) {
			continue
		}
		found := false
		for _, m := range c.VolumeMounts {
			if path.Dir(file) != m.MountPath {
				continue
			}
			for _, v := range vols {
				if v.Name == m.Name && v.Secret != nil {
					s, ok := secrets[v.Secret.SecretName]
					require.True(t, ok, "%s: secret %s has no manifest", flag, v.Secret.SecretName)
					_, inData := s.Data[path.Base(file)]
					_, inString := s.StringData[path.Base(file)]
					assert.True(t, inData || inString, "%s=%s: secret %s has no key %s", flag, file, s.Name, path.Base(file))
					found = true
				}
			}
		}
		assert.True(t, found, "%s=%s is not in a mounted secret", flag, file)
	}
}

func readSecrets(t *testing.T) map[string]corev1.Secret {
	t.Helper()
	out := map[string]corev1.Secret{}
	for name, kind := range manifests {
		if kind == "Secret" {
			var s corev1.Secret
			decodeStrict(t, name, &s)
			out[s.Name] = s
		}
	}
	return out
}

// The Deployment's probes are serve's v2 health routes on the port serve
// listens on; the Service sends to that port; the secrets hold the files.
func TestDeploymentProbesAndPorts(t *testing.T) {
	var d appsv1.Deployment
	decodeStrict(t, "deployment.yaml", &d)
	var svc corev1.Service
	decodeStrict(t, "service.yaml", &svc)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	checkServeContainer(t, c, d.Spec.Template.Spec.Volumes, readSecrets(t))
	assert.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector, "the Service selects the Deployment's pods")
	assert.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	for _, p := range svc.Spec.Ports {
		assert.Equal(t, addrPort(t, c), probePort(t, c, p.TargetPort), "Service port %s", p.Name)
	}
	require.NotNil(t, d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	assert.GreaterOrEqual(t, *d.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(35), "serve drains for its request timeout (30 s) and 5 s more")
}

// The InferenceService's predictor is a custom container running serve on
// KServe's port 8080, probed on serve's v2 health routes.
func TestInferenceServicePredictor(t *testing.T) {
	is := readISVC(t)
	require.Len(t, is.Predictor.Containers, 1)
	c := is.Predictor.Containers[0]
	assert.Equal(t, "kserve-container", c.Name, "KServe's name for a custom predictor's container")
	assert.Equal(t, int32(8080), addrPort(t, c), "KServe sends to 8080")
	checkServeContainer(t, c, is.Predictor.Volumes, readSecrets(t))
}

// Strict decoding refuses a field the API type lacks, and a duplicate one.
func TestDecodeStrictRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  replica: 2\n",
		"duplicate field": "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  replicas: 2\n",
		"wrong type":      "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: one\n",
	} {
		t.Run(name, func(t *testing.T) {
			var d appsv1.Deployment
			assert.Error(t, yaml.UnmarshalStrict([]byte(doc), &d))
		})
	}
}
