// Package config resolves the loraqa run configuration.
//
// Values come from four layers, later ones winning: the defaults (those of
// the reference Python recipe), a YAML, JSON or TOML file, environment
// variables, and `--set section.key=value` command-line overrides. The
// layers are merged with viper.
//
// Every key reads the environment variable LORAQA_<SECTION>_<KEY> (for
// example LORAQA_TRAIN_EPOCHS), except base_qa_model and
// fine_tuned_adapter_path, which read BASE_QA_MODEL and
// FINE_TUNED_ADAPTER_PATH exactly, as the reference does.
//
// Decoding is strict: a value of the wrong type or an unknown key is an
// error naming the key and where it came from (file, environment variable
// or --set), and unknown keys come with a "did you mean" suggestion. Other
// LORAQA_* variables (LORAQA_DEBUG, LORAQA_TESTDATA, ...) are not config keys;
// a LORAQA_ variable is reported as unknown only when it looks like one: it
// starts with LORAQA_DATA_, LORAQA_LORA_ or LORAQA_TRAIN_, ends in a key's
// name, or is a small typo away from a known variable.
package config
