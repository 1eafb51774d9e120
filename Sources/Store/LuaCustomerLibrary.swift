import RedisClient

/// Lua shared by the customer functions (`Lua/customer_base.lua`): key names (mirroring `Keys`),
/// following merge redirects, merging two customers, the field and attribute indexes. The first
/// source of the Functions library, so every function can use it.
enum LuaCustomerLibrary {
    static let source = String(decoding: PackageResources.customer_base_lua, as: UTF8.self)
}

/// The gateway's Redis Functions library: every `.lua` file under `Sources/Store/Lua`, loaded with
/// `FUNCTION LOAD REPLACE` under a name that carries the sources' version (see `RedisFunctionLibrary`).
public enum StoreFunctions {
    public static let library = RedisFunctionLibrary(
        name: "scrm",
        sources: [LuaCustomerLibrary.source] + [
            PackageResources.customers_lua, PackageResources.crm_lua, PackageResources.limits_lua, PackageResources.leases_lua, PackageResources.customer_profile_lua, PackageResources.customer_import_lua,
            PackageResources.outbound_lua, PackageResources.outbound_steps_lua, PackageResources.engagement_lua, PackageResources.conversion_lua, PackageResources.campaigns_lua, PackageResources.scores_lua,
            PackageResources.journeys_lua, PackageResources.tags_lua, PackageResources.erasure_lua, PackageResources.audience_lua, PackageResources.segments_lua,
            PackageResources.surfaces_lua, PackageResources.wecom_groups_lua,
        ].map { String(decoding: $0, as: UTF8.self) })
}
