# pydfs image: one image for every role; the command picks it (`dfs namenode ...`, `dfs datanode ...`,
# or any `dfs` shell command). docker-compose.yml runs a whole cluster from it (docs/deploy.md).
# The Python minor version matches pyproject.toml (requires-python >= 3.11, mypy's python_version).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/pydfs

# Dependencies first, pinned by constraints.txt (the versions CI is proven with), so a source
# change rebuilds only the last layers.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt -c constraints.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY client ./client
COPY namenode ./namenode
COPY datanode ./datanode
COPY fuse_mount ./fuse_mount
COPY server_common ./server_common
RUN pip install --no-deps -c constraints.txt . && rm -rf build ./*.egg-info

# A fixed, unprivileged service account. It owns /data, where every role keeps its state: a named
# volume mounted there starts with this ownership. The NameNode's superuser is this user (dfs).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/dfs dfs \
    && mkdir /data && chown dfs:dfs /data
USER dfs
WORKDIR /data

# 9870: NameNode (client and DataNode protocol, WebHDFS, status pages); 9864: DataNode.
EXPOSE 9870 9864
ENTRYPOINT ["dfs"]
CMD ["--help"]
