package verify

import "github.com/sugarme/gotch"

// Run is RunDType with a float32 base, for the tests.
func Run(dir string, dev gotch.Device) (*Report, error) { return RunDType(dir, dev, gotch.Float) }
