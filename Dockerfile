# confab: a multi-stage build. The first stage compiles the release binary, the second
# is a small Debian image with only that binary, running as an unprivileged user.
#
#   docker build -t confab .
#   docker run -p 8080:8080 -v confab-data:/var/lib/confab confab
#
# Settings come from CONFAB_* environment variables (or a mounted confab.toml named by
# CONFAB_CONFIG); see docs/operations.md.

FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p confab-server \
    && install -m 0755 target/release/confab /usr/local/bin/confab

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/confab --create-home --shell /usr/sbin/nologin confab
COPY --from=build /usr/local/bin/confab /usr/local/bin/confab
USER confab
WORKDIR /var/lib/confab
VOLUME /var/lib/confab
ENV CONFAB_LISTEN=0.0.0.0:8080 \
    CONFAB_DATABASE_URL=sqlite:///var/lib/confab/confab.db?mode=rwc \
    CONFAB_LOG__FORMAT=json
EXPOSE 8080
# confab drains on SIGTERM (Docker's default stop signal): give `docker stop -t` more
# than twice `shutdown_grace`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/confab"]
CMD ["serve"]
