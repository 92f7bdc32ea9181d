# syntax=docker/dockerfile:1
# Multi-stage build of a small static `tusk` image:
#   docker build -t tusk:0.1.0 .
# Stage 1 builds a fully static musl binary; stage 2 is distroless/static (no shell, no libc),
# running as the non-root user 65532 that deploy/operator.yaml expects.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY core core
COPY fake-apiserver fake-apiserver
COPY scenarios scenarios
COPY operator operator
COPY e2e e2e
COPY deploy deploy
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tusk-operator \
    && cp target/release/tusk /tusk \
    && strip /tusk

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tusk /usr/local/bin/tusk
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tusk"]
CMD ["run"]
