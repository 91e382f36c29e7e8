#!/usr/bin/env bash
# Downloads the Apache Kafka broker's runtime classpath from Maven Central
# into $1/libs (a cache folder keyed by version). The broker declares its
# logging backend compile-only, so log4j's core and slf4j bridge are added.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.infometis.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_${KAFKA_SCALA_VERSION}</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>${SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
POM
printf '[stack] downloading Apache Kafka %s and its dependencies from Maven Central\n' "$KAFKA_VERSION" >&2
mkdir -p "$out"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$out/libs.tmp"
rm -rf "$out/libs" && mv "$out/libs.tmp" "$out/libs"
printf '[stack] Kafka %s ready in %s (%s jars)\n' "$KAFKA_VERSION" "$out" "$(ls "$out/libs" | wc -l)" >&2
