# Benchmarks: see bench/README.md.
bench: all
	@bash bench/run.sh
