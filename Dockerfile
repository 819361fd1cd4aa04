# syntax=docker/dockerfile:1
# Build a wheel in one stage, install it into a slim runtime as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY riskd ./riskd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home riskd
# The rule presets, for configs to reference as /usr/share/riskd/rules/<preset>.yaml.
COPY rules /usr/share/riskd/rules
USER 10001
# /metrics /livez /readyz /status (set http.listen: 0.0.0.0:9108 in the config).
EXPOSE 9108
ENTRYPOINT ["riskd"]
CMD ["run", "--config", "/etc/riskd/riskd.yaml"]
