# The operator image: a static-ish release binary on distroless (glibc, no shell), non-root.
#   docker build -t soc2-operator .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/soc2-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/soc2-operator /usr/local/bin/soc2-operator
# 65532: distroless's nonroot user, as the chart's securityContext expects.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/soc2-operator"]
CMD ["run"]
