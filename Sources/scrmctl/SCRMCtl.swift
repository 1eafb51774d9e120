import ArgumentParser

@main
struct SCRMCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrmctl",
        abstract: "Talk to a running scrm-gateway: simulate platform webhooks, look customers up, manage tags, preview audiences, run campaigns, follow the CRM sync.",
        subcommands: [Simulate.self, Customers.self, Tags.self, Audience.self, Campaigns.self, Journeys.self, CRM.self, Scoring.self, APIKeys.self, Audit.self, Redis.self]
    )
}
