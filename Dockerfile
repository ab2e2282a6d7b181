# credsidecar container image: a static binary built from this source tree.
#
#   docker build -t credsidecar \
#     --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) .
#
# Both base images are build arguments, so air-gapped or hardened builds can
# swap them: BUILDER_IMAGE needs a Go toolchain matching go.mod, /bin/sh and
# /etc/ssl/certs/ca-certificates.crt (its Go proxy settings are used as they
# are: GOPROXY=off with a filled module cache works); RUNTIME_IMAGE can be
# anything, even scratch: the binary is static and the CA bundle is copied in.
ARG BUILDER_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Modules first: this layer stays cached while only our sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/credsidecar ./cmd/credsidecar \
 && /out/credsidecar version

FROM ${RUNTIME_IMAGE}
# aws mode talks TLS to AWS STS: the CA bundle must be there whatever the base.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/credsidecar /credsidecar
# distroless's nonroot user. Listening on port 80 as this user needs
# net.ipv4.ip_unprivileged_port_start=0 (Docker's default since 20.10) or
# the NET_BIND_SERVICE capability as an ambient capability.
USER 65532:65532
EXPOSE 80 8169 8170 8171
ENTRYPOINT ["/credsidecar"]
CMD ["serve", "--config", "/etc/credsidecar/config.yaml"]
