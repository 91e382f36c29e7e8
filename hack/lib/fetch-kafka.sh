#!/usr/bin/env bash
# Downloads from Maven Central, into a cache folder keyed by version ($1):
#   $1/libs   the Apache Kafka broker's runtime classpath (the default, or $2=broker)
#   $1/tools  Kafka's command-line tools' classpath ($2=tools), as a
#             distribution's bin/ scripts run them (the NiFi sample's consumer).
# Both declare their logging backend compile-only, so log4j's core and slf4j bridge are added.
set -euo pipefail
out=$1
part=${2:-broker}
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
case $part in
  broker) artifact=kafka_${KAFKA_SCALA_VERSION} folder=libs ;;
  tools) artifact=kafka-tools folder=tools ;;
  *) printf 'fetch-kafka.sh: unknown part %s (broker or tools)\n' "$part" >&2; exit 2 ;;
esac
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
    <dependency><groupId>org.apache.kafka</groupId><artifactId>${artifact}</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>${SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
POM
printf '[stack] downloading Apache Kafka %s (%s) and its dependencies from Maven Central\n' "$KAFKA_VERSION" "$part" >&2
mkdir -p "$out"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$out/$folder.tmp"
rm -rf "${out:?}/$folder" && mv "$out/$folder.tmp" "$out/$folder"
printf '[stack] Kafka %s (%s) ready in %s (%s jars)\n' "$KAFKA_VERSION" "$part" "$out/$folder" "$(ls "$out/$folder" | wc -l)" >&2
