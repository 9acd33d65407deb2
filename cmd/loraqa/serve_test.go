package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve refuses flags that cannot work with a usage error that names them,
// before it loads anything.
func TestServeRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "m", "--release-idle", "-1s"}, "--release-idle -1s: want a duration of 0 (never) or more"},
		{[]string{}, "give --adapter NAME=DIR (repeatable) or --model (a QA model)"},
		{[]string{"--adapter", "a=x", "--adapter", "b=y", "--merge"}, "--merge needs exactly one adapter, got 2"},
		{[]string{"--model", "m", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := stderr(t, func() error { return commands["serve"].run(context.Background(), tc.args) })
			require.Error(t, err)
			assert.ErrorAs(t, err, new(usageError))
			assert.Equal(t, tc.want, err.Error())
		})
	}
}
