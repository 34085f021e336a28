# Recipes for people who have `just`; each is one script in scripts/.

# Run the demo (services, build, enqueue, scheduler + workers, results)
demo:
    ./scripts/demo.sh

# Run every test against throwaway MariaDB and Redis
test:
    ./scripts/test.sh

# Check that every prerequisite works (libclang, cmake, ffmpeg, MariaDB, Redis, ...)
doctor:
    ./scripts/doctor.sh

# Start the throwaway MariaDB and Redis and write .env
services-up:
    ./scripts/services.sh up

# Stop them
services-down:
    ./scripts/services.sh down

# Fetch a whisper model (base, tiny.en or base-q8_0) into .cache/models
model name="base":
    ./scripts/fetch-model.sh {{name}}

# Selling-point F1 on the labelled fixture videos (whisper + detector, end to end)
eval:
    ./scripts/fetch-model.sh base >/dev/null
    cargo run --release --locked -p worker --bin eval

# Rebuild the labelled fixture videos
fixtures:
    ./scripts/make-fixtures.sh

# Benchmarks: queue throughput, backlog, pipeline overhead, cut cost (see BENCHMARKS.md)
bench what="all":
    ./scripts/bench.sh {{what}}
