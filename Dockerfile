# vth-twin API image. The Python wheels of rasterio, pyogrio and pyproj carry GDAL/PROJ, so no system GDAL.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY twin ./twin
COPY layers ./layers
COPY ingest ./ingest
COPY demo ./demo
COPY api ./api
COPY frontend ./frontend
COPY cli ./cli
RUN pip install --no-cache-dir . && useradd --system --home /app twin \
 && mkdir -p /var/lib/vth-twin && chown twin /var/lib/vth-twin
# The API's own files (the cursor and report-link secret, the bulk downloads, the model registry) live here;
# with several API replicas, set TWIN_CURSOR_SECRET so that they all sign alike.
ENV TWIN_DATA_DIR=/var/lib/vth-twin
USER twin
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["twin", "serve", "--host", "0.0.0.0", "--port", "8000"]
