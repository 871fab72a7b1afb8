# Operator image: multi-stage, production dependencies only, non-root, no shell at run time (distroless).
#   docker build -t captionrun/operator:0.1.0 .
# Node 24 LTS, the version CI tests on (hack/install-node.sh installs the same release there).
FROM node:24.19.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts stay off: nothing the operator runs needs one (sharp ships prebuilt binaries).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY bin bin
COPY lib lib
COPY operator operator
COPY trainer-image trainer-image
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin/captionrun ./bin/captionrun
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/captionrun"]
CMD ["operator"]
