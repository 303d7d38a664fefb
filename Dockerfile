# Doppel in a container: build with the Swift toolchain, run on slim Debian with only the
# runtime libraries. (Docker cannot run on the development machines; this file is kept
# correct by reading and by matching scripts/bootstrap's package list.)

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libopenblas-dev libsqlite3-dev libpng-dev libjpeg-dev libturbojpeg0-dev zlib1g-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies in their own layer so source edits do not refetch them.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/doppel" /usr/local/bin/doppel

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libopenblas0-pthread libsqlite3-0 libpng16-16 libturbojpeg0 libjpeg62-turbo zlib1g libpq5 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/doppel --shell /usr/sbin/nologin doppel
COPY --from=build /usr/local/bin/doppel /usr/local/bin/doppel
COPY Migrations /usr/share/doppel/Migrations
COPY config /etc/doppel
USER doppel
WORKDIR /var/lib/doppel
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["doppel"]
CMD ["serve", "--config", "/etc/doppel/doppel.json", "--host", "0.0.0.0", "--port", "8080"]
