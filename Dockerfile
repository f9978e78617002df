# syncd: one image for every instance; configuration comes from the environment.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data syncd && mkdir -p /data && chown syncd /data
COPY --from=build /install /usr/local
USER syncd
WORKDIR /data
ENV HOST=0.0.0.0 PORT=3001 SYNCD_DATA_DIR=/data
EXPOSE 3001
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3001\")}/healthz')"
STOPSIGNAL SIGTERM
CMD ["syncd", "serve"]
