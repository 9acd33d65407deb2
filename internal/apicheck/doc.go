// Package apicheck holds repository-wide checks of the module's Go API, run as
// tests: an exported identifier of a library package that no production code
// uses is a test helper, and belongs in a _test.go file (export_test.go).
// The checks parse the sources with go/parser (no LibTorch); the package has
// no code outside its tests.
package apicheck
