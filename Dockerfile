# ichseg: docker build -t ichseg . && docker run --gpus all -v in:/input -v out:/output ichseg
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    ICHSEG_WEIGHTS=/opt/ichseg/weights
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/ichseg
# A CUDA build of torch matching the base image, then the package and its weights.
RUN pip3 install --index-url https://download.pytorch.org/whl/cu124 "torch>=2.4,<3"
COPY pyproject.toml README.md ./
COPY ich_infer ich_infer
COPY training training
COPY weights weights
RUN pip3 install .

RUN useradd --create-home --uid 1000 ichseg
USER ichseg
# /input -> /output (or /predict when only that is mounted, as the INSTANCE organisers ran it)
ENTRYPOINT ["python3", "-m", "ich_infer.docker_entry"]
