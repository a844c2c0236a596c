# feedmill in a container. docs/deploy.md says how to run it; our CI does not build images.
#   docker build -t feedmill .
#   docker run -p 8080:8080 -v feedmill-data:/var/lib/feedmill feedmill
#   docker run ... -v ./my-config.yaml:/etc/feedmill/config.yaml:ro feedmill   # your own config
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEEDMILL_CONFIG=/etc/feedmill/config.yaml \
    FEEDMILL_DATABASE_URL=sqlite:////var/lib/feedmill/feedmill.db

WORKDIR /src
COPY pyproject.toml README.md config.yaml ./
COPY sources ./sources
COPY store ./store
COPY feeds ./feeds
COPY feedmill ./feedmill
# The example config, listening on every interface of the container.
RUN pip install '.[postgres]' \
    && install -d -m 0755 /etc/feedmill \
    && sed -e 's/^  host: 127\.0\.0\.1$/  host: 0.0.0.0/' config.yaml > /etc/feedmill/config.yaml \
    && useradd --system --uid 10001 --home-dir /var/lib/feedmill --shell /usr/sbin/nologin feedmill \
    && install -d -o feedmill -g feedmill -m 0750 /var/lib/feedmill \
    && rm -rf /src

USER feedmill
WORKDIR /var/lib/feedmill
VOLUME /var/lib/feedmill
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["feedmill"]
CMD ["run"]
