// Optional Durable backend: a Durable Task Scheduler (Consumption SKU) and one task hub.
// Used only with durableBackend = 'durableTaskScheduler' (see main.bicep and docs/azure.md).
// API versions: Azure/bicep-types-az generated/durabletask_0/microsoft.durabletask/2025-11-01/types.md
// (from Azure/azure-rest-api-specs specification/durabletask, stable 2025-11-01).

param name string
param location string
param tags object = {}
@description('Task hub name: the hubName of host.json.')
param taskHubName string

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // Callers authenticate with Entra ID (Durable Task Data Contributor); the allow list stays open
    // because Flex Consumption without a virtual network has no fixed outbound addresses.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: {
      name: 'Consumption'
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
