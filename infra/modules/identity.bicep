// The user-assigned identity the app runs as: storage, Application Insights, Azure ML and Azure
// Monitor all see this one principal. User-assigned, so its role assignments exist before the app.
// API version: Azure/bicep-types-az generated/msi/microsoft.managedidentity/2023-01-31/types.md.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
