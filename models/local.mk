# The default models of `joulebench run` (trained by scripts/train-default.py; recipe in
# docs/default-models.md), installed under $(pkgdatadir)/models/{tiny,small}.
nobase_dist_pkgdata_DATA = \
	models/tiny/config.json \
	models/tiny/preprocessor_config.json \
	models/tiny/generation_config.json \
	models/tiny/tokenizer.json \
	models/tiny/model.safetensors.index.json \
	models/tiny/model-00001-of-00002.safetensors \
	models/tiny/model-00002-of-00002.safetensors \
	models/tiny/TRAINED.json \
	models/tiny/SHA256SUMS \
	models/small/config.json \
	models/small/preprocessor_config.json \
	models/small/generation_config.json \
	models/small/tokenizer.json \
	models/small/model.safetensors.index.json \
	models/small/model-00001-of-00002.safetensors \
	models/small/model-00002-of-00002.safetensors \
	models/small/TRAINED.json \
	models/small/SHA256SUMS
