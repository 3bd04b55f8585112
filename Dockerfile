# hallwatch: the engine's container image (also runs `hallwatch broker-config` and the
# simulator). docker-compose.yml builds it; on its own:
#   docker build -t hallwatch .
#   docker run --rm hallwatch engine --help
FROM python:3.11-slim-bookworm

# mosquitto_passwd, which `hallwatch broker-config` uses to hash passwords, comes with
# Debian's mosquitto package (the broker itself runs in its own container); `hallwatch
# posters` draws its Chinese text with the WenQuanYi Micro Hei font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends mosquitto fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY queue_engine/ queue_engine/
COPY window_agents/ window_agents/
RUN pip install --no-cache-dir .

# The bridge template (broker-config --townships) and the example sites.
COPY broker_config/ broker_config/
COPY examples/ examples/

RUN useradd --system --uid 10001 --no-create-home hallwatch \
    && mkdir -p /data \
    && chown hallwatch /data
USER hallwatch
VOLUME /data
ENV HALLWATCH_DB=/data/hallwatch.db \
    HALLWATCH_CONFIG=/app/examples/demo-site.toml \
    PYTHONUNBUFFERED=1
EXPOSE 9108
ENTRYPOINT ["hallwatch"]
CMD ["engine", "--http", "0.0.0.0:9108"]
