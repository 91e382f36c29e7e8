package org.elasticsearch.node;

import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.elasticsearch.xcontent.XContentBuilder;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * hack/stack's Elasticsearch 9 node: the real server, started from its published jars.
 *
 * Arguments are node settings as key=value. Maven Central has the server and the
 * transport-netty4 module but no distribution, so there is no plugin directory to
 * read: the node is built through the package-private construction path (hence this
 * package) with the test framework's MockPluginsService, which loads plugin classes
 * from the classpath. Two modules are not published, rest-root and reindex. Only the
 * first is made up for, by {@link RootEndpoint}: GET / and HEAD / are what clients'
 * info() and ping() call and how tools learn the server's version. _reindex stays
 * absent: writing one would be a mock of the server.
 */
public final class Elasticsearch9Node extends Node {

    private Elasticsearch9Node(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(NodeConstruction.prepareConstruction(environment, null, new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader loader) {
                return new MockPluginsService(env.settings(), env, plugins);
            }
        }, true));
    }

    public static void main(String[] args) {
        try {
            Settings.Builder settings = Settings.builder();
            for (String arg : args) {
                int equals = arg.indexOf('=');
                settings.put(arg.substring(0, equals), arg.substring(equals + 1));
            }
            LogConfigurator.registerErrorListener();
            Environment environment = InternalSettingsPreparer.prepareEnvironment(settings.build(), Map.of(), null, () -> "elasticsearch");
            LogConfigurator.configure(environment, true);
            Node node = new Elasticsearch9Node(environment, List.of(Netty4Plugin.class, RootEndpoint.class));
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    node.prepareForClose();
                    node.close();
                    node.awaitClose(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    e.printStackTrace();
                }
            }));
            node.start();
            // The node's threads are daemons: as the real bootstrap's keep-alive thread
            // does, this one keeps the JVM running until SIGTERM runs the hook above.
            Thread.currentThread().join();
        } catch (Throwable e) {
            // Into the log, and a non-zero exit whatever threads a half-started node left.
            e.printStackTrace();
            System.exit(1);
        }
    }

    /**
     * GET / and HEAD /, as the unpublished rest-root module answers them (its MainResponse),
     * from this node's facts. The RestController adds X-Elastic-Product to every response.
     */
    public static final class RootEndpoint extends Plugin implements ActionPlugin {
        private ClusterService clusterService;

        @Override
        public Collection<?> createComponents(PluginServices services) {
            clusterService = services.clusterService();
            return List.of();
        }

        @Override
        public Collection<RestHandler> getRestHandlers(
            RestHandlersServices services,
            Supplier<DiscoveryNodes> nodesInCluster,
            Predicate<NodeFeature> clusterSupportsFeature
        ) {
            String nodeName = Node.NODE_NAME_SETTING.get(services.settings());
            return List.of(new BaseRestHandler() {
                @Override
                public String getName() {
                    return "main_action";
                }

                @Override
                public List<Route> routes() {
                    return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
                }

                @Override
                public boolean canTripCircuitBreaker() {
                    return false;
                }

                @Override
                protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
                    return channel -> {
                        ClusterState state = clusterService.state();
                        Build build = Build.current();
                        XContentBuilder body = channel.newBuilder();
                        if (request.hasParam("pretty") == false) {
                            body.prettyPrint().lfAtEnd();
                        }
                        body.startObject()
                            .field("name", nodeName)
                            .field("cluster_name", state.getClusterName().value())
                            .field(
                                "cluster_uuid",
                                state.metadata().clusterUUIDCommitted() ? state.metadata().clusterUUID() : Metadata.UNKNOWN_CLUSTER_UUID
                            )
                            .startObject("version")
                            .field("number", build.qualifiedVersion())
                            .field("build_flavor", build.flavor())
                            .field("build_type", build.type().displayName())
                            .field("build_hash", build.hash())
                            .field("build_date", build.date())
                            .field("build_snapshot", build.isSnapshot())
                            .field("lucene_version", IndexVersion.current().luceneVersion().toString())
                            .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                            .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                            .endObject()
                            .field("tagline", "You Know, for Search")
                            .endObject();
                        channel.sendResponse(new RestResponse(RestStatus.OK, body));
                    };
                }
            });
        }
    }
}
