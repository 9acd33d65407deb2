// Package hub resolves a model reference to a local directory, downloading
// from the Hugging Face Hub when needed.
//
// A reference is either a local directory holding config.json, returned as
// is, or a hub id ("distilbert-base-uncased", "org/name", optionally
// "@revision", default "main"). Hub files go into the cache layout of the
// Python huggingface_hub library, so either program reuses what the other
// downloaded:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//	  models--org--name/
//	    blobs/<etag>                 file contents, named by ETag (sha256 for LFS files)
//	    refs/<revision>              commit hash the revision pointed to
//	    snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
//	    .no_exist/<commit>/<file>    marker: the file does not exist at that commit
//
// Resolve fetches config.json, the weights (model.safetensors, else
// model.safetensors.index.json and its shards, else pytorch_model.bin) and
// the tokenizer files that exist (tokenizer.json, vocab.txt,
// tokenizer_config.json, special_tokens_map.json). It honours HF_ENDPOINT,
// HF_HUB_OFFLINE (cache only), HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and
// HF_HUB_CACHE / HF_HOME; Options override each, which keeps tests
// independent of the process environment.
//
// Integrity: the size announced by the hub (X-Linked-Size or
// Content-Length) is always checked, and so is the sha256 when the ETag is
// one (LFS files), both for fresh downloads and for blobs already in the
// cache, where a truncated or corrupt blob is downloaded again (online) or
// reported (offline). Downloads are written to .<blob>.<random>.tmp,
// synced, then renamed, so concurrent downloads of the same blob cannot
// corrupt it; partial downloads are not resumed.
//
// Why not github.com/gomlx/go-huggingface/hub (v0.3.1), evaluated for this:
// it ignores HF_HOME and HF_HUB_CACHE, writes no refs/ (it keeps the commit
// in a private info/ file, so a cache filled by Python cannot be used
// without the network and the one it fills lacks refs/main), has no offline
// mode (it always queries the API for the commit first), trusts any existing
// blob without checking size or sha256, and prints progress to stdout. This
// package is a small net/http client for the resolve endpoint instead.
package hub
