# syntax=docker/dockerfile:1
# fledge container image: the release binary on distroless (glibc, no shell), running as a non-root user.
# Not built on the development machines (no Docker engine runs there); kept simple so it builds as written.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fledge \
 && install -D -m 0755 target/release/fledge /out/fledge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/fledge /usr/local/bin/fledge
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/fledge"]
CMD ["--help"]
