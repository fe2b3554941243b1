//! Contacts: read phone exports (vCard 2.1/3.0/4.0, Google/Outlook CSV), merge, write one .vcf.
