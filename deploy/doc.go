// Package deploy holds loraqa's Kubernetes manifests (k8s/): a Deployment of
// `loraqa serve` with probes on the Open Inference Protocol v2 health
// routes, its Service, the secrets for the bearer tokens and TLS, a volume
// claim for the models, and a KServe InferenceService running the same
// image as a custom v2 predictor.
//
// It is a Go module of its own, so that the Kubernetes API types its tests
// decode the manifests into stay out of loraqa's module. The tests decode
// each manifest strictly (unknown fields fail) into k8s.io/api's types,
// validate the InferenceService against the openAPIV3Schema of KServe's
// published CRD (testdata/, derived by ./cmd/crdschema from KServe's
// config/crd/full/serving.kserve.io_inferenceservices.yaml), and check the
// probes' paths against the routes loraqa serves (docs/openapi.json, which
// serve's tests keep equal to its route table) and their ports against the
// container's --addr.
package deploy
