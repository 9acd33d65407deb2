package serve

import (
	"go/build"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The HTTP package reaches the model only through package engine: of this
// module's packages it imports engine alone (tests aside).
func TestServeImportsOnlyEngine(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/loraqa/loraqa/") {
			assert.Equal(t, "github.com/loraqa/loraqa/engine", imp, "serve imports %s", imp)
		}
		assert.NotContains(t, imp, "gotch", "serve imports %s", imp)
	}
}
