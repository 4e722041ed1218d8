# syntax=docker/dockerfile:1
#
# The mspo-spoc container image: one static Go binary on distroless, no
# shell. .ci/run reads the `go build` line below and runs it as it is, so
# the flags the image is built with are the flags CI builds and tests.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t mspo-spoc .

# Pinned to a patch release, so a rebuild of the same commit uses the same
# compiler. Bump it with go.mod's go line.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
# The modules in a layer of their own: it is rebuilt only when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# tzdata is embedded by cmd/job (import time/tzdata); -trimpath keeps the
# builder's paths out of the binary; -s -w drops the symbol tables.
RUN go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/job ./cmd/job

# static: CA certificates and /etc/passwd with the nonroot user, nothing
# else (no libc, no shell, no package manager).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/job /job
USER nonroot:nonroot
ENTRYPOINT ["/job"]
